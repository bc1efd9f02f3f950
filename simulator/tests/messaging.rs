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
                    skdm.axolotl_sender_key_distribution_message
                        .as_deref()
                        .unwrap(),
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

impl Drop for Companion {
    fn drop(&mut self) {
        self.sim.connections().unregister(self.conn);
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
    assert_eq!(
        attr(&m, "from"),
        format!("{A}:{}@s.whatsapp.net", a1.device)
    );
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
    assert_eq!(
        attr(&r, "from"),
        format!("{B}:{}@s.whatsapp.net", b1.device)
    );

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
    assert_eq!(
        dsm.destination_jid.as_deref(),
        Some(&*format!("{A}@s.whatsapp.net"))
    );
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
    a1.send(
        Node::new("receipt")
            .attr("id", id2.clone())
            .attr("to", Jid::pn(B)),
    );
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
    drop((a1, b1));
    running.shutdown().await.unwrap();
}

fn attr_lid(sim: &Sim, phone: &str) -> String {
    format!("{}@lid", sim.state().lid_of(phone).unwrap())
}

#[tokio::test]
async fn groups_created_by_api_and_iq_with_messages_both_ways() {
    let (running, api) = setup().await;
    let sim = running.sim().clone();
    let mut a1 = Companion::pair(&sim, A, 3);
    let mut b1 = Companion::pair(&sim, B, 4);

    // The control API creates the group; members' companions hear w:gp2 create.
    let (s, v) = api
        .post(
            "/sim/groups",
            json!({"creator": A, "subject": "Team", "participants": [B]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let gjid = v["jid"].as_str().unwrap().to_string();
    let gid = gjid.strip_suffix("@g.us").unwrap().to_string();
    for c in [&mut a1, &mut b1] {
        let n = c.one("notification");
        assert_eq!(attr(&n, "type"), "w:gp2");
        assert_eq!(attr(&n, "from"), gjid);
        let g = n.child("create").unwrap().child("group").unwrap();
        assert_eq!(attr(g, "subject"), "Team");
        assert_eq!(g.children_by_tag("participant").count(), 2);
    }

    // A's phone → group: every member device gets its SKDM (pairwise) and the shared skmsg.
    let (s, v) = api
        .post(
            &format!("/sim/accounts/{A}/messages"),
            json!({"to": gjid, "text": "hello team"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id1 = v["id"].as_str().unwrap().to_string();
    for c in [&mut a1, &mut b1] {
        let m = c.one("message");
        assert_eq!(attr(&m, "from"), gjid);
        assert_eq!(attr(&m, "participant"), format!("{A}@s.whatsapp.net"));
        assert_eq!(attr(&m, "addressing_mode"), "pn");
        assert_eq!(enc_types(&m), ["pkmsg", "skmsg"]);
        let opened = c.open(&m);
        assert!(opened[0].sender_key_distribution_message.is_some());
        assert_eq!(text_of(&opened).as_deref(), Some("hello team"));
    }
    let inbox_b = phone_messages(&api, B).await;
    assert_eq!(inbox_b.len(), 1, "{inbox_b:?}");
    assert_eq!(inbox_b[0]["chat"], gjid);
    assert_eq!(inbox_b[0]["participant"], format!("{A}@s.whatsapp.net"));
    assert_eq!(inbox_b[0]["text"], "hello team");

    // B1 → group: A's phone decrypts SKDM + skmsg; A1 too; B's own phone too.
    let (id2, node) = b1.group_message(&gid, "hi all");
    let acks = b1.send(node);
    assert_eq!(attr(&acks[0], "from"), gjid);
    let m = a1.one("message");
    assert_eq!(
        attr(&m, "participant"),
        format!("{B}:{}@s.whatsapp.net", b1.device)
    );
    assert_eq!(attr(&m, "participant_lid"), attr_lid(&sim, B));
    assert!(m.child("device-identity").is_some());
    assert_eq!(text_of(&a1.open(&m)).as_deref(), Some("hi all"));
    let inbox_a = phone_messages(&api, A).await;
    let got = inbox_a.iter().find(|m| m["id"] == id2.as_str()).unwrap();
    assert_eq!(got["text"], "hi all");
    assert_eq!(got["chat"], gjid);
    assert!(
        phone_messages(&api, B)
            .await
            .iter()
            .any(|m| m["id"] == id2.as_str() && m["text"] == "hi all")
    );
    // A's phone's delivery receipt reaches B1 as a group receipt (B's own phone sends none for
    // its own account's message).
    let receipts: Vec<Node> = b1
        .inbox()
        .into_iter()
        .filter(|n| n.tag == "receipt")
        .collect();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(attr(&receipts[0], "from"), gjid);
    assert_eq!(
        attr(&receipts[0], "participant"),
        format!("{A}@s.whatsapp.net")
    );
    assert_eq!(attr(&receipts[0], "id"), id2);

    // B1's group delivery receipt for the phone's message reaches A's phone.
    b1.send(
        Node::new("receipt")
            .attr("id", id1.clone())
            .attr("to", Jid::group(gid.clone()))
            .attr("participant", Jid::pn(A)),
    );
    let (_, v) = api
        .get(&format!("/sim/accounts/{A}/receipts?id={id1}"))
        .await;
    let from: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["from"].as_str().unwrap())
        .collect();
    assert!(
        from.contains(&&*format!("{B}:{}@s.whatsapp.net", b1.device)),
        "{v}"
    );

    // w:g2 over the socket: create, query, participating, promote, subject, remove.
    a1.inbox();
    b1.inbox();
    let iq = |id: &str, to: Jid, child: Node| {
        Node::new("iq")
            .attr("id", id.to_string())
            .attr("to", to)
            .attr("type", "set")
            .attr("xmlns", "w:g2")
            .children(vec![child])
    };
    let out = a1.send(iq(
        "c1",
        Jid::server_only(Server::Group),
        Node::new("create")
            .attr("subject", "Second")
            .attr("key", "k1")
            .children(vec![Node::new("participant").attr("jid", Jid::pn(B))]),
    ));
    assert_eq!(attr(&out[0], "type"), "result");
    let g = out[0].child("group").unwrap();
    let gid2 = attr(g, "id");
    assert_eq!(attr(g, "subject"), "Second");
    let types: Vec<Option<&str>> = g
        .children_by_tag("participant")
        .map(|p| p.attr_str("type"))
        .collect();
    assert_eq!(types, [Some("superadmin"), None]);
    let n = b1.one("notification");
    assert!(n.child("create").is_some());
    assert!(
        a1.inbox().is_empty(),
        "the creating device gets the IQ result only"
    );

    let out = b1.send(iq("q1", Jid::group(gid2.clone()), Node::new("query")));
    assert_eq!(attr(out[0].child("group").unwrap(), "subject"), "Second");
    let out = b1.send(iq(
        "p1",
        Jid::server_only(Server::Group),
        Node::new("participating"),
    ));
    assert_eq!(
        out[0]
            .child("groups")
            .unwrap()
            .children_by_tag("group")
            .count(),
        2
    );
    // B is no admin: it may not promote.
    let out = b1.send(iq(
        "x1",
        Jid::group(gid2.clone()),
        Node::new("promote").children(vec![Node::new("participant").attr("jid", Jid::pn(B))]),
    ));
    assert_eq!(attr(&out[0], "type"), "error");
    let out = a1.send(iq(
        "x2",
        Jid::group(gid2.clone()),
        Node::new("promote").children(vec![Node::new("participant").attr("jid", Jid::pn(B))]),
    ));
    let promoted = out[0]
        .child("promote")
        .unwrap()
        .child("participant")
        .unwrap();
    assert_eq!(attr(promoted, "jid"), format!("{B}@s.whatsapp.net"));
    assert_eq!(promoted.attr_str("error"), None, "no error: promoted");
    assert!(b1.one("notification").child("promote").is_some());
    let out = b1.send(iq(
        "s1",
        Jid::group(gid2.clone()),
        Node::new("subject").text("Renamed"),
    ));
    assert_eq!(attr(&out[0], "type"), "result");
    assert_eq!(sim.state().group(&gid2).unwrap().subject, "Renamed");
    assert!(a1.one("notification").child("subject").is_some());
    let out = a1.send(iq(
        "r1",
        Jid::group(gid2.clone()),
        Node::new("remove").children(vec![Node::new("participant").attr("jid", Jid::pn(B))]),
    ));
    assert_eq!(attr(&out[0], "type"), "result");
    assert!(
        b1.one("notification").child("remove").is_some(),
        "the removed member hears it"
    );
    let out = b1.send(iq("q2", Jid::group(gid2.clone()), Node::new("query")));
    assert_eq!(attr(&out[0], "type"), "error");
    // A former member's group message is acked but goes nowhere.
    a1.inbox();
    let out = b1.send(
        Node::new("message")
            .attr("id", "3EB0GONE")
            .attr("to", Jid::group(gid2.clone()))
            .attr("type", "text")
            .children(vec![
                Node::new("enc").attr("type", "skmsg").bytes(vec![1, 2]),
            ]),
    );
    assert_eq!(attr(&out[0], "class"), "message");
    assert!(a1.inbox().is_empty());

    // Privacy tokens get an empty result.
    let out = a1.send(
        Node::new("iq")
            .attr("id", "t1")
            .attr("to", Jid::server_only(Server::Pn))
            .attr("type", "set")
            .attr("xmlns", "privacy")
            .children(vec![Node::new("tokens")]),
    );
    assert_eq!(attr(&out[0], "type"), "result");
    assert!(out[0].child_nodes().is_empty());
    drop((a1, b1));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn offline_devices_get_queued_stanzas() {
    let (running, api) = setup().await;
    let sim = running.sim().clone();
    let mut a1 = Companion::pair(&sim, A, 5);
    let mut b1 = Companion::pair(&sim, B, 6);
    // B1 goes offline.
    sim.connections().unregister(b1.conn);
    sim.state().set_device_online(B, b1.device, false);

    let (id, node) = a1.dm(B, "while you were out");
    a1.send(node);
    let (s, _) = api
        .post(
            &format!("/sim/accounts/{A}/messages"),
            json!({"to": format!("{B}@s.whatsapp.net"), "text": "me too"}),
        )
        .await;
    assert_eq!(s, 200);
    let queued = sim.state().drain_offline(B, b1.device).unwrap();
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].id, id);
    let first = binary::decode(&queued[0].node).unwrap();
    assert_eq!(
        text_of(&b1.open(&first)).as_deref(),
        Some("while you were out")
    );
    let second = binary::decode(&queued[1].node).unwrap();
    assert_eq!(text_of(&b1.open(&second)).as_deref(), Some("me too"));
    assert!(b1.inbox().is_empty());
    drop((a1, b1));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn drop_acks_fault_suppresses_acks_not_delivery() {
    let (running, _api) = setup().await;
    let sim = running.sim().clone();
    let mut a1 = Companion::pair(&sim, A, 7);
    let mut b1 = Companion::pair(&sim, B, 8);
    sim.faults().set_drop_acks(true);
    let (_, node) = a1.dm(B, "no ack");
    assert!(a1.send(node).is_empty());
    let m = b1.one("message");
    assert_eq!(text_of(&b1.open(&m)).as_deref(), Some("no ack"));
    let id = attr(&m, "id");
    assert!(
        b1.send(Node::new("receipt").attr("id", id).attr("to", a1.jid()))
            .is_empty()
    );
    sim.faults().set_drop_acks(false);
    let (_, node) = a1.dm(B, "acked");
    assert_eq!(a1.send(node).len(), 1);
    drop((a1, b1));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn garbage_enc_is_undecryptable_and_answered_with_a_retry_receipt() {
    let (running, api) = setup().await;
    let sim = running.sim().clone();
    let mut a1 = Companion::pair(&sim, A, 9);
    let node = Node::new("message")
        .attr("id", "3EB0BAD")
        .attr("to", Jid::pn(B))
        .attr("type", "text")
        .attr("t", "1700000000")
        .children(vec![Node::new("participants").children(vec![
            Node::new("to").attr("jid", Jid::pn(B)).children(vec![
                    Node::new("enc")
                        .attr("v", "2")
                        .attr("type", "msg")
                        .bytes(vec![0x33, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
                ]),
        ])]);
    a1.send(node);
    let inbox = phone_messages(&api, B).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["type"], "undecryptable");
    assert_eq!(inbox[0]["id"], "3EB0BAD");
    let r = a1.one("receipt");
    assert_eq!(attr(&r, "type"), "retry");
    assert_eq!(attr(&r, "from"), format!("{B}@s.whatsapp.net"));
    let retry = r.child("retry").unwrap();
    assert_eq!(attr(retry, "count"), "1");
    assert_eq!(attr(retry, "id"), "3EB0BAD");
    assert_eq!(
        r.child("registration")
            .unwrap()
            .content_bytes()
            .unwrap()
            .len(),
        4
    );

    // A1 relays its own retry receipt for a message of B's phone: B's phone does not record it.
    a1.send(
        Node::new("receipt")
            .attr("id", "3EB0BAD")
            .attr("to", Jid::pn(B))
            .attr("type", "retry")
            .children(vec![Node::new("retry").attr("count", "1")]),
    );
    let (_, v) = api.get(&format!("/sim/accounts/{B}/receipts")).await;
    assert_eq!(v, json!([]));
    drop(a1);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_stanzas_get_errors_or_are_ignored() {
    let (running, _api) = setup().await;
    let sim = running.sim().clone();
    let a1 = Companion::pair(&sim, A, 10);
    let g = |child: Option<Node>, xmlns: &'static str| {
        let n = Node::new("iq")
            .attr("id", "i1")
            .attr("type", "set")
            .attr("xmlns", xmlns);
        match child {
            Some(c) => n.children(vec![c]),
            None => n,
        }
    };
    let cases: Vec<Node> = vec![
        Node::new("message"),
        Node::new("message").attr("id", "x"),
        Node::new("message").attr("id", "x").attr("to", "not a jid"),
        Node::new("message")
            .attr("id", "x")
            .attr("to", Jid::pn(B))
            .children(vec![Node::new("participants").children(vec![
                Node::new("to").attr("jid", Jid::pn("999")),
                Node::new("to").children(vec![Node::new("enc")]),
                Node::new("to")
                    .attr("jid", Jid::pn(B))
                    .children(vec![Node::new("enc").attr("type", "pkmsg")]),
                Node::new("to")
                    .attr("jid", Jid::with_device(B, 77, Server::Pn))
                    .children(vec![Node::new("enc").attr("type", "skmsg").bytes(vec![1])]),
            ])]),
        Node::new("message")
            .attr("id", "y")
            .attr("to", Jid::group("123"))
            .children(vec![Node::new("enc").attr("type", "skmsg").bytes(vec![0])]),
        Node::new("receipt"),
        Node::new("receipt")
            .attr("id", "nope")
            .attr("to", Jid::pn("1")),
        Node::new("ack").attr("id", "z"),
        Node::new("presence").attr("type", "subscribe"),
        Node::new("chatstate").attr("to", Jid::group("404")),
        Node::new("weird"),
        Node::new("iq").attr("xmlns", "w:g2"),
    ];
    for node in cases {
        let out = a1.send(node.clone());
        assert!(out.len() <= 1, "{node:?} → {out:?}");
    }
    for (child, code) in [
        (None, "400"),
        (Some(Node::new("create")), "400"),
        (Some(Node::new("query")), "400"),
        (Some(Node::new("frobnicate")), "501"),
        (
            Some(Node::new("create").attr("subject", "S").children(vec![
                Node::new("participant").attr("jid", Jid::pn("19999999999")),
            ])),
            "400",
        ),
    ] {
        let out = a1.send(g(child, "w:g2"));
        assert_eq!(attr(&out[0], "type"), "error");
        assert_eq!(attr(out[0].child("error").unwrap(), "code"), code);
    }
    let out = a1.send(g(None, "usync"));
    assert_eq!(attr(&out[0], "type"), "error");
    // An impossible device number is dropped.
    let out = router::handle_stanza(
        &sim,
        &Origin {
            conn: a1.conn,
            phone: A.into(),
            device: 1 << 20,
        },
        Node::new("message").attr("id", "x").attr("to", Jid::pn(B)),
    );
    assert!(out.is_empty());
    // Unknown targets: deliver never panics.
    router::deliver(&sim, "000", 3, Node::new("message"));
    router::deliver(
        &sim,
        A,
        0,
        Node::new("message").attr("id", "q").attr("from", "garbage"),
    );
    drop(a1);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn phone_sessions_persist_in_the_snapshot() {
    let (running, api) = setup().await;
    let sim = running.sim().clone();
    let _a1 = Companion::pair(&sim, A, 12);
    let (s, _) = api
        .post(
            &format!("/sim/accounts/{B}/messages"),
            json!({"to": format!("{A}@s.whatsapp.net"), "text": "x"}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, json) = sim.state().snapshot_json().unwrap();
    let v: Value = serde_json::from_slice(&json).unwrap();
    let sessions = &v["accounts"][B]["phone_device"]["signal"]["sessions"];
    assert!(sessions.get(format!("{A}.0")).is_some(), "{sessions}");
    assert!(sessions.get(format!("{A}.1")).is_some(), "{sessions}");
    drop(_a1);
    running.shutdown().await.unwrap();
}

impl Companion {
    /// A retry receipt for `id` to `to` (optionally a group with `participant`), with our keys.
    fn retry_receipt(&self, id: &str, to: Jid, participant: Option<Jid>, with_keys: bool) -> Node {
        let mut r = Node::new("receipt")
            .attr("id", id.to_string())
            .attr("to", to)
            .attr("type", "retry");
        if let Some(p) = participant {
            r = r.attr("participant", p);
        }
        let mut children = vec![
            Node::new("retry")
                .attr("count", "2")
                .attr("id", id.to_string())
                .attr("t", "1")
                .attr("v", "1"),
            Node::new("registration").bytes(self.identity.registration_id.to_be_bytes().to_vec()),
        ];
        if with_keys {
            let pk = self.prekeys.get(&20).unwrap();
            let id3 = |id: u32| id.to_be_bytes()[1..].to_vec();
            children.push(Node::new("keys").children(vec![
                Node::new("type").bytes(vec![5]),
                Node::new("identity").bytes(self.identity.public().0.to_vec()),
                Node::new("key").children(vec![
                    Node::new("id").bytes(id3(pk.id)),
                    Node::new("value").bytes(pk.key_pair.public().0.to_vec()),
                ]),
                Node::new("skey").children(vec![
                    Node::new("id").bytes(id3(self.spk.id)),
                    Node::new("value").bytes(self.spk.key_pair.public().0.to_vec()),
                    Node::new("signature").bytes(self.spk.signature.to_vec()),
                ]),
            ]));
        }
        r.children(children)
    }
}

#[tokio::test]
async fn retry_receipts_are_relayed_and_answered_by_the_phone() {
    let (running, api) = setup().await;
    let sim = running.sim().clone();
    let mut a1 = Companion::pair(&sim, A, 13);
    let mut b1 = Companion::pair(&sim, B, 14);

    // B's phone → A; A1 "loses" it and asks again with its keys: a new pkmsg with count.
    let (_, v) = api
        .post(
            &format!("/sim/accounts/{B}/messages"),
            json!({"to": format!("{A}@s.whatsapp.net"), "text": "again?"}),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    let lost = a1.one("message");
    drop(lost);
    b1.inbox();
    a1.send(a1.retry_receipt(&id, Jid::pn(B), None, true));
    let m = a1.one("message");
    assert_eq!(attr(&m, "id"), id);
    let enc = m.child("enc").unwrap();
    assert_eq!(attr(enc, "type"), "pkmsg");
    assert_eq!(attr(enc, "count"), "2");
    let pk = PreKeySignalMessage::parse(enc.content_bytes().unwrap()).unwrap();
    assert_eq!(pk.pre_key_id, Some(20), "the session was built from <keys>");
    assert_eq!(text_of(&a1.open(&m)).as_deref(), Some("again?"));
    assert!(
        b1.inbox().is_empty(),
        "the resend goes to the asking device only"
    );

    // Without keys the phone fetches a bundle.
    a1.send(a1.retry_receipt(&id, Jid::pn(B), None, false));
    let m = a1.one("message");
    assert_eq!(text_of(&a1.open(&m)).as_deref(), Some("again?"));

    // Companion ↔ companion: the retry receipt is relayed with its children; the resend to one
    // device (to = device JID, no <participants>) reaches only that device.
    let (id2, node) = a1.dm(B, "first try");
    a1.send(node);
    let _lost = b1.one("message");
    a1.inbox();
    b1.send(b1.retry_receipt(&id2, a1.jid(), None, false));
    let r = a1.inbox().into_iter().find(|n| n.tag == "receipt").unwrap();
    assert_eq!(attr(&r, "type"), "retry");
    assert_eq!(
        attr(&r, "from"),
        format!("{B}:{}@s.whatsapp.net", b1.device)
    );
    assert!(r.child("retry").is_some() && r.child("registration").is_some());
    a1.sessions.remove(&format!("{B}.{}", b1.device));
    let enc = a1.enc_for(B, b1.device, &text_message("first try"));
    let resend = Node::new("message")
        .attr("id", id2.clone())
        .attr("to", Jid::with_device(B, b1.device, Server::Pn))
        .attr("type", "text")
        .attr("device_fanout", "false")
        .children(vec![enc, Node::new("device-identity").bytes(vec![1])]);
    assert_eq!(attr(&a1.send(resend)[0], "class"), "message");
    let m = b1.one("message");
    assert_eq!(text_of(&b1.open(&m)).as_deref(), Some("first try"));
    let before = phone_messages(&api, B).await.len();
    assert_eq!(before, 1, "B's phone got only the original");

    // A group retry: the phone resends pairwise with its sender key inside.
    let (_, v) = api
        .post(
            "/sim/groups",
            json!({"creator": B, "subject": "G", "participants": [A]}),
        )
        .await;
    let gjid = v["jid"].as_str().unwrap().to_string();
    let gid = gjid.strip_suffix("@g.us").unwrap().to_string();
    let (_, v) = api
        .post(
            &format!("/sim/accounts/{B}/messages"),
            json!({"to": gjid, "text": "group hi"}),
        )
        .await;
    let gid_msg = v["id"].as_str().unwrap().to_string();
    a1.inbox();
    a1.send(a1.retry_receipt(&gid_msg, Jid::group(gid), Some(Jid::pn(B)), false));
    let m = a1.one("message");
    assert_eq!(attr(&m, "from"), gjid);
    assert_eq!(enc_types(&m), ["pkmsg"]);
    let opened = a1.open(&m);
    assert!(opened[0].sender_key_distribution_message.is_some());
    assert_eq!(text_of(&opened).as_deref(), Some("group hi"));
    drop((a1, b1));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn presence_and_chatstate_reach_online_peers() {
    let (running, _api) = setup().await;
    let sim = running.sim().clone();
    let mut a1 = Companion::pair(&sim, A, 15);
    let mut b1 = Companion::pair(&sim, B, 16);
    let out = a1.send(
        Node::new("presence")
            .attr("type", "subscribe")
            .attr("to", Jid::pn(B)),
    );
    assert_eq!(out.len(), 1);
    assert_eq!(attr(&out[0], "from"), format!("{B}@s.whatsapp.net"));
    assert!(out[0].get_attr("type").is_none(), "B1 is online");
    // The push name comes with presence available.
    a1.send(
        Node::new("presence")
            .attr("type", "available")
            .attr("name", "Alicia"),
    );
    assert!(
        a1.send(
            Node::new("chatstate")
                .attr("to", Jid::pn(B))
                .children(vec![Node::new("composing")]),
        )
        .is_empty()
    );
    let c = b1.one("chatstate");
    assert_eq!(attr(&c, "from"), format!("{A}@s.whatsapp.net"));
    assert!(c.child("composing").is_some());
    // B subscribes to A: A's later availability changes reach B's online device.
    b1.send(
        Node::new("presence")
            .attr("type", "subscribe")
            .attr("to", Jid::pn(A)),
    );
    a1.send(Node::new("presence").attr("type", "unavailable"));
    let p = b1.one("presence");
    assert_eq!(attr(&p, "from"), format!("{A}@s.whatsapp.net"));
    assert_eq!(attr(&p, "type"), "unavailable");
    a1.send(Node::new("presence").attr("type", "available"));
    let p = b1.one("presence");
    assert!(p.get_attr("type").is_none(), "available carries no type");
    let (_, node) = a1.dm(B, "x");
    a1.send(node);
    assert_eq!(attr(&b1.one("message"), "notify"), "Alicia");
    // Offline: chatstates are not queued.
    sim.connections().unregister(b1.conn);
    a1.send(
        Node::new("chatstate")
            .attr("to", Jid::pn(B))
            .children(vec![Node::new("paused")]),
    );
    let out = a1.send(
        Node::new("presence")
            .attr("type", "subscribe")
            .attr("to", Jid::pn(B)),
    );
    assert_eq!(attr(&out[0], "type"), "unavailable");
    assert!(sim.state().drain_offline(B, b1.device).unwrap().is_empty());
    drop((a1, b1));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn lid_addressed_messages_keep_the_lid_namespace() {
    let (running, api) = setup().await;
    let sim = running.sim().clone();
    let mut a1 = Companion::pair(&sim, A, 17);
    let mut b1 = Companion::pair(&sim, B, 18);
    let b_lid = sim.state().lid_of(B).unwrap();
    let a_lid = sim.state().lid_of(A).unwrap();
    let content = text_message("via lid");
    let to_phone = a1.enc_for(B, 0, &content);
    let to_b1 = a1.enc_for(B, b1.device, &content);
    let node = Node::new("message")
        .attr("id", "3EB0LID1")
        .attr("to", Jid::lid(b_lid.clone()))
        .attr("type", "text")
        .children(vec![
            Node::new("participants").children(vec![
                Node::new("to")
                    .attr("jid", Jid::with_device(b_lid.clone(), 0, Server::Lid))
                    .children(vec![to_phone]),
                Node::new("to")
                    .attr(
                        "jid",
                        Jid::with_device(b_lid.clone(), b1.device, Server::Lid),
                    )
                    .children(vec![to_b1]),
            ]),
            Node::new("device-identity").bytes(vec![1]),
        ]);
    let acks = a1.send(node);
    assert_eq!(attr(&acks[0], "from"), format!("{b_lid}@lid"));
    let m = b1.one("message");
    assert_eq!(attr(&m, "from"), format!("{a_lid}:{}@lid", a1.device));
    assert_eq!(attr(&m, "sender_pn"), format!("{A}@s.whatsapp.net"));
    assert_eq!(text_of(&b1.open(&m)).as_deref(), Some("via lid"));
    let inbox = phone_messages(&api, B).await;
    assert_eq!(inbox[0]["text"], "via lid");
    assert_eq!(inbox[0]["from"], format!("{A}@s.whatsapp.net"));
    // The phone's delivery receipt comes back from B's LID device 0.
    let r = a1.one("receipt");
    assert_eq!(attr(&r, "id"), "3EB0LID1");
    assert_eq!(attr(&r, "from"), format!("{b_lid}@lid"));
    // The phone writes to a LID chat too.
    let (s, _) = api
        .post(
            &format!("/sim/accounts/{B}/messages"),
            json!({"to": format!("{a_lid}@lid"), "text": "back via lid"}),
        )
        .await;
    assert_eq!(s, 200);
    let m = a1.one("message");
    assert_eq!(text_of(&a1.open(&m)).as_deref(), Some("back via lid"));
    drop((a1, b1));
    running.shutdown().await.unwrap();
}

/// Random stanzas from a small vocabulary (tags, attributes, JIDs of real and unknown accounts,
/// random bytes): the router answers at most a few nodes and never panics.
#[tokio::test]
async fn random_stanzas_never_panic() {
    use rand_core::Rng;
    let (running, _api) = setup().await;
    let sim = running.sim().clone();
    let a1 = Companion::pair(&sim, A, 19);
    let _b1 = Companion::pair(&sim, B, 20);
    let gid = sim.state().create_group(A, "G", &[B.to_string()]).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    const TAGS: [&str; 16] = [
        "message",
        "receipt",
        "ack",
        "presence",
        "chatstate",
        "iq",
        "participants",
        "to",
        "enc",
        "list",
        "item",
        "retry",
        "keys",
        "create",
        "participant",
        "query",
    ];
    const KEYS: [&str; 10] = [
        "id",
        "to",
        "type",
        "jid",
        "participant",
        "xmlns",
        "subject",
        "count",
        "addressing_mode",
        "from",
    ];
    const VALUES: [&str; 10] = [
        "pkmsg", "msg", "skmsg", "retry", "read", "w:g2", "privacy", "set", "lid", "",
    ];
    fn random_node(rng: &mut ChaCha20Rng, depth: u32, gid: &str) -> Node {
        let mut n = Node::new(TAGS[(rng.next_u32() % 16) as usize]);
        for _ in 0..rng.next_u32() % 5 {
            let key = KEYS[(rng.next_u32() % 10) as usize];
            n = match rng.next_u32() % 6 {
                0 => n.attr(key, Jid::pn(A)),
                1 => n.attr(
                    key,
                    Jid::with_device(B, (rng.next_u32() % 4) as u16, Server::Pn),
                ),
                2 => n.attr(key, Jid::group(gid.to_string())),
                3 => n.attr(key, Jid::lid("123")),
                _ => n.attr(key, VALUES[(rng.next_u32() % 10) as usize]),
            };
        }
        if depth < 3 && rng.next_u32().is_multiple_of(2) {
            let kids = (0..rng.next_u32() % 4)
                .map(|_| random_node(rng, depth + 1, gid))
                .collect();
            n = n.children(kids);
        } else if rng.next_u32().is_multiple_of(2) {
            let mut b = vec![0u8; (rng.next_u32() % 80) as usize];
            rng.fill_bytes(&mut b);
            if let Some(first) = b.first_mut() {
                *first = 0x33;
            }
            n = n.bytes(b);
        }
        n
    }
    for _ in 0..3000 {
        let node = random_node(&mut rng, 0, &gid);
        let out = a1.send(node.clone());
        assert!(out.len() <= 2, "{node:?} → {out:?}");
        router::deliver(&sim, B, rng.next_u32() % 3, node);
    }
    drop((a1, _b1));
    running.shutdown().await.unwrap();
}

impl Companion {
    /// Moves the companion to another simulator (a restarted one) and logs it in there.
    fn rebind(&mut self, sim: &Sim) {
        self.sim.connections().unregister(self.conn);
        let (conn, rx) = sim.connections().register(peer());
        sim.device_logged_in(conn, &self.phone, self.device);
        self.sim = sim.clone();
        self.conn = conn;
        self.rx = rx;
    }
}

#[tokio::test]
async fn phone_sessions_survive_a_restart() {
    let dir = temp_dir("phone-signal");
    let config = || zapin_sim::SimConfig {
        seed: Some(21),
        state_dir: Some(dir.clone()),
        ..zapin_sim::SimConfig::default()
    };
    let first = start(config()).await;
    let api = Api::new(&first);
    for (phone, name) in [(A, "Alice"), (B, "Bob")] {
        api.post("/sim/accounts", json!({"phone": phone, "push_name": name}))
            .await;
    }
    let mut a1 = Companion::pair(first.sim(), A, 22);
    let (_, v) = api
        .post(
            "/sim/groups",
            json!({"creator": A, "subject": "G", "participants": [B]}),
        )
        .await;
    let gid = v["jid"]
        .as_str()
        .unwrap()
        .strip_suffix("@g.us")
        .unwrap()
        .to_string();
    let (_, node) = a1.dm(B, "before");
    a1.send(node);
    let (_, node) = a1.group_message(&gid, "group before");
    a1.send(node);
    a1.inbox();
    // B's phone answers, so A1's session with it moves on to `msg`.
    api.post(
        &format!("/sim/accounts/{B}/messages"),
        json!({"to": format!("{A}@s.whatsapp.net"), "text": "reply"}),
    )
    .await;
    let m = a1.one("message");
    a1.open(&m);
    first.sim().connections().unregister(a1.conn);
    first.shutdown().await.unwrap();

    let second = start(config()).await;
    let api = Api::new(&second);
    a1.rebind(second.sim());
    let (_, node) = a1.dm(B, "after");
    let to_phone = node
        .child("participants")
        .unwrap()
        .children_by_tag("to")
        .find(|t| attr(t, "jid") == format!("{B}@s.whatsapp.net"))
        .unwrap()
        .clone();
    assert_eq!(enc_types(&to_phone), ["msg"]);
    a1.send(node);
    let (_, node) = a1.group_message(&gid, "group after");
    a1.send(node);
    let texts: Vec<String> = phone_messages(&api, B)
        .await
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        texts,
        ["after", "group after"],
        "decrypted with the restored state"
    );
    drop(a1);
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn group_admin_iqs_change_state_and_notify_members() {
    let (running, api) = setup().await;
    let sim = running.sim().clone();
    let mut a1 = Companion::pair(&sim, A, 3);
    let mut b1 = Companion::pair(&sim, B, 4);
    let (s, v) = api
        .post(
            "/sim/groups",
            json!({"creator": A, "subject": "Admin", "participants": [B]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let gjid = v["jid"].as_str().unwrap().to_string();
    let gid = gjid.strip_suffix("@g.us").unwrap().to_string();
    a1.inbox();
    b1.inbox();
    let iq = |id: &str, kind: &str, to: Jid, child: Node| {
        Node::new("iq")
            .attr("id", id.to_string())
            .attr("to", to)
            .attr("type", kind.to_string())
            .attr("xmlns", "w:g2")
            .children(vec![child])
    };
    let group = || Jid::group(gid.clone());
    let server = || Jid::server_only(Server::Group);
    let code_of = |n: &Node| -> u16 { attr(n.child("error").unwrap(), "code").parse().unwrap() };

    // Description: set by a member, heard by the other, stored with its id.
    let out = a1.send(iq(
        "d1",
        "set",
        group(),
        Node::new("description")
            .attr("id", "DESC1")
            .children(vec![Node::new("body").bytes(b"Rules".to_vec())]),
    ));
    assert_eq!(attr(&out[0], "type"), "result", "{out:?}");
    let n = b1.one("notification");
    let d = n.child("description").unwrap();
    assert_eq!(d.child("body").unwrap().content_str(), Some("Rules"));
    // A change based on a stale description id is refused.
    let out = a1.send(iq(
        "d2",
        "set",
        group(),
        Node::new("description")
            .attr("id", "DESC2")
            .attr("prev", "STALE")
            .children(vec![Node::new("body").bytes(b"x".to_vec())]),
    ));
    assert_eq!(code_of(&out[0]), 409);

    // Settings are for admins: B is refused with 401, A locks the info.
    let out = b1.send(iq("s1", "set", group(), Node::new("announcement")));
    assert_eq!(code_of(&out[0]), 401);
    let out = a1.send(iq("s2", "set", group(), Node::new("locked")));
    assert_eq!(attr(&out[0], "type"), "result");
    assert!(b1.one("notification").child("locked").is_some());
    // Locked: B may no longer rename the group.
    let out = b1.send(iq("s3", "set", group(), Node::new("subject").text("Mine")));
    assert_eq!(code_of(&out[0]), 401);

    // Ephemeral: only WhatsApp's timers.
    let out = a1.send(iq(
        "e1",
        "set",
        group(),
        Node::new("ephemeral").attr("expiration", "5"),
    ));
    assert_eq!(code_of(&out[0]), 400);
    let out = a1.send(iq(
        "e2",
        "set",
        group(),
        Node::new("ephemeral").attr("expiration", "604800"),
    ));
    assert_eq!(attr(&out[0], "type"), "result");
    assert_eq!(
        attr(
            b1.one("notification").child("ephemeral").unwrap(),
            "expiration"
        ),
        "604800"
    );

    // The metadata carries all of it.
    let out = b1.send(iq("q", "get", group(), Node::new("query")));
    let g = out[0].child("group").unwrap();
    assert!(g.child("locked").is_some());
    assert!(g.child("announcement").is_none());
    assert_eq!(attr(g.child("ephemeral").unwrap(), "expiration"), "604800");
    assert_eq!(attr(g.child("description").unwrap(), "id"), "DESC1");

    // Invite codes: admins only; B is removed, then joins back with the code.
    let out = b1.send(iq("i0", "get", group(), Node::new("invite")));
    assert_eq!(code_of(&out[0]), 401);
    let out = a1.send(iq("i1", "get", group(), Node::new("invite")));
    let code = attr(out[0].child("invite").unwrap(), "code");
    assert_eq!(code.len(), 22);
    let out = a1.send(iq("i2", "get", group(), Node::new("invite")));
    assert_eq!(
        attr(out[0].child("invite").unwrap(), "code"),
        code,
        "stable"
    );
    let out = a1.send(iq(
        "r1",
        "set",
        group(),
        Node::new("remove").children(vec![Node::new("participant").attr("jid", Jid::pn(B))]),
    ));
    assert_eq!(attr(&out[0], "type"), "result");
    b1.one("notification");
    let out = b1.send(iq(
        "j0",
        "get",
        server(),
        Node::new("invite").attr("code", "not-a-code"),
    ));
    assert_eq!(code_of(&out[0]), 406);
    let out = b1.send(iq(
        "j1",
        "get",
        server(),
        Node::new("invite").attr("code", code.clone()),
    ));
    assert_eq!(attr(out[0].child("group").unwrap(), "subject"), "Admin");
    let out = b1.send(iq(
        "j2",
        "set",
        server(),
        Node::new("invite").attr("code", code.clone()),
    ));
    assert_eq!(attr(out[0].child("group").unwrap(), "jid"), gjid);
    let n = a1.one("notification");
    assert_eq!(attr(n.child("add").unwrap(), "reason"), "invite");
    // Revoked: the old code is gone (410), a new one works.
    let out = a1.send(iq("i3", "set", group(), Node::new("invite")));
    let fresh = attr(out[0].child("invite").unwrap(), "code");
    assert_ne!(fresh, code);
    assert_eq!(
        attr(b1.one("notification").child("invite").unwrap(), "code"),
        fresh
    );
    let out = b1.send(iq(
        "j3",
        "get",
        server(),
        Node::new("invite").attr("code", code.clone()),
    ));
    assert_eq!(code_of(&out[0]), 410);

    // Picture: JPEG only; members hear a `picture` notification.
    let picture = |id: &str, bytes: Vec<u8>| {
        Node::new("iq")
            .attr("id", id.to_string())
            .attr("to", Jid::server_only(Server::Pn))
            .attr("target", Jid::group(gid.clone()))
            .attr("type", "set")
            .attr("xmlns", "w:profile:picture")
            .children(vec![
                Node::new("picture").attr("type", "image").bytes(bytes),
            ])
    };
    let out = a1.send(picture("p1", b"GIF89a".to_vec()));
    assert_eq!(code_of(&out[0]), 400);
    let out = a1.send(picture("p2", vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]));
    assert_eq!(attr(&out[0], "type"), "result", "{out:?}");
    let n = b1.one("notification");
    assert_eq!(attr(&n, "type"), "picture");
    assert!(n.child("set").is_some());

    // The control API shows the phone's view and acts for a phone.
    let (s, v) = api.get(&format!("/sim/groups/{gjid}")).await;
    assert_eq!(s, 200);
    assert_eq!(v["description"], "Rules");
    assert_eq!(v["locked"], true);
    assert_eq!(v["ephemeral"], 604800);
    assert_eq!(v["invite_code"], fresh.as_str());
    assert_eq!(v["picture_bytes"], 7);
    let (s, v) = api
        .post(
            &format!("/sim/groups/{gjid}/subject"),
            json!({"actor": B, "subject": "Nope"}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = api
        .post(
            &format!("/sim/groups/{gjid}/subject"),
            json!({"actor": A, "subject": "Renamed by phone"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        attr(a1.one("notification").child("subject").unwrap(), "subject"),
        "Renamed by phone",
        "the actor's companions hear what its phone did"
    );
    b1.one("notification");
    let (s, v) = api
        .post(
            &format!("/sim/groups/{gjid}/participants"),
            json!({"actor": A, "action": "promote", "participants": [B, "15559999999"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["code"], 200);
    assert_eq!(v["results"][1]["code"], 404);
    assert!(b1.one("notification").child("promote").is_some());
    assert!(a1.one("notification").child("promote").is_some());
    let (s, _) = api
        .post(&format!("/sim/groups/{gjid}/leave"), json!({"phone": B}))
        .await;
    assert_eq!(s, 200);
    assert!(a1.one("notification").child("remove").is_some());
    let (s, v) = api
        .post(
            "/sim/groups/join",
            json!({"phone": B, "code": "AAAAAAAAAAAAAAAAAAAAAA"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    drop((a1, b1));
    running.shutdown().await.unwrap();
}
