//! `zapin_engine::messaging` end to end: zapin devices, each with its own memory store and
//! identity, talking through a small in-memory server that routes stanzas the way
//! wa-protocol.md §7.3/§12.4/§12.5 describe (usync and key fetches answered from the devices'
//! published keys, `<participants>` fanned out, receipts relayed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use zapin_engine::messaging::content::{Quoted, prepare_text};
use zapin_engine::messaging::prekeys::user_bundle_node;
use zapin_engine::messaging::receipts::ServerAck;
use zapin_engine::messaging::{
    AddressingMode, Exchange, ExchangeError, Limits, Me, MessageStatus, Messenger, ReceivedMessage,
    Sent, StatusUpdate,
};
use zapin_protocol::binary::{AttrValue, Content, Node};
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::signal::{self, LocalIdentity, PreKeyBundle, SignedPreKey};
use zapin_signal_store::{DeviceCredentials, DeviceId, KeyPairBytes, MasterKey, Secret32, Store};

fn kp(k: &KeyPair) -> KeyPairBytes {
    KeyPairBytes::new(k.public().0, *k.private_bytes())
}

/// What the server knows of a device.
struct SrvDevice {
    pn: Jid,
    lid: Jid,
    identity: LocalIdentity,
    signed: SignedPreKey,
    prekeys: VecDeque<signal::PreKey>,
    device_identity: Vec<u8>,
    push_name: String,
}

struct Group {
    members: Vec<usize>,
    mode: AddressingMode,
}

#[derive(Default)]
struct FakeServer {
    devices: Vec<SrvDevice>,
    inboxes: Vec<VecDeque<Node>>,
    /// message id → sending device.
    log: HashMap<String, usize>,
    groups: HashMap<String, Group>,
    /// Every stanza delivered, per device, for replay tests.
    delivered: Vec<(usize, Node)>,
    /// Corrupt the `<enc>`s of the next N message deliveries to a device.
    corrupt: HashMap<usize, usize>,
    t: u64,
    usync_queries: usize,
    key_fetches: usize,
}

fn jid_eq_user(a: &Jid, b: &Jid) -> bool {
    a.user == b.user && a.server == b.server
}

impl FakeServer {
    fn find(&self, jid: &Jid) -> Option<usize> {
        self.devices.iter().position(|d| {
            (jid_eq_user(jid, &d.pn) || jid_eq_user(jid, &d.lid)) && jid.device == d.pn.device
        })
    }

    fn account_devices(&self, user: &Jid) -> Vec<usize> {
        (0..self.devices.len())
            .filter(|&i| {
                jid_eq_user(user, &self.devices[i].pn) || jid_eq_user(user, &self.devices[i].lid)
            })
            .collect()
    }

    fn answer_iq(&mut self, iq: Node) -> Node {
        let result = Node::new("iq")
            .attr("from", Jid::server_only(Server::Pn))
            .attr("type", "result");
        match iq.attr_str("xmlns") {
            Some("usync") => {
                self.usync_queries += 1;
                let usync = iq.child("usync").unwrap();
                assert_eq!(usync.attr_str("context"), Some("message"));
                let q = usync.child("query").unwrap();
                assert_eq!(q.child("devices").unwrap().attr_str("version"), Some("2"));
                assert!(q.child("lid").is_some());
                let mut users = Vec::new();
                for u in usync.child("list").unwrap().children_by_tag("user") {
                    assert!(matches!(u.get_attr("jid"), Some(AttrValue::Jid(_))));
                    let jid = u.attr_jid("jid").unwrap();
                    let devs = self.account_devices(&jid);
                    let Some(&first) = devs.first() else { continue };
                    let list = devs
                        .iter()
                        .map(|&i| {
                            let d = self.devices[i].pn.device;
                            let n = Node::new("device").attr("id", d.to_string());
                            if d == 0 {
                                n
                            } else {
                                n.attr("key-index", d.to_string())
                            }
                        })
                        .collect();
                    users.push(Node::new("user").attr("jid", jid).children(vec![
                        Node::new("devices")
                            .children(vec![Node::new("device-list").children(list)]),
                        Node::new("lid").attr("val", self.devices[first].lid.to_non_ad()),
                    ]));
                }
                result.children(vec![
                    Node::new("usync").children(vec![Node::new("list").children(users)]),
                ])
            }
            Some("encrypt") => {
                self.key_fetches += 1;
                let mut users = Vec::new();
                for u in iq.child("key").unwrap().children_by_tag("user") {
                    assert!(matches!(u.get_attr("jid"), Some(AttrValue::Jid(_))));
                    let jid = u.attr_jid("jid").unwrap();
                    match self.find(&jid) {
                        Some(i) => {
                            let d = &mut self.devices[i];
                            let pk = d.prekeys.pop_front();
                            let b = PreKeyBundle::from_local(&d.identity, &d.signed, pk.as_ref());
                            users.push(user_bundle_node(&jid, &b, Some(&d.device_identity)));
                        }
                        None => users.push(Node::new("user").attr("jid", jid).children(vec![
                            Node::new("error").attr("code", "406").attr("text", "gone"),
                        ])),
                    }
                }
                result.children(vec![Node::new("list").children(users)])
            }
            other => panic!("unexpected iq {other:?}"),
        }
    }

    fn deliver(&mut self, to: usize, mut node: Node) {
        if node.tag == "message"
            && let Some(n) = self.corrupt.get_mut(&to)
            && *n > 0
        {
            *n -= 1;
            if let Content::Nodes(children) = &mut node.content {
                for c in children.iter_mut().filter(|c| c.tag == "enc") {
                    c.content = Content::Bytes(vec![0x33, 1, 2, 3, 4, 5, 6, 7, 8, 9].into());
                }
            }
        }
        let node = wire(&node);
        self.delivered.push((to, node.clone()));
        self.inboxes[to].push_back(node);
    }

    fn next_t(&mut self) -> String {
        self.t += 1;
        (1_700_000_000 + self.t).to_string()
    }

    /// A stanza from device `from`. It goes through the real codec first, so what the server
    /// reads is what a real server would.
    fn route(&mut self, from: usize, node: Node) {
        let node = wire(&node);
        match node.tag.as_ref() {
            "message" => self.route_message(from, node),
            "receipt" => self.route_receipt(from, node),
            "ack" => {}
            other => panic!("unexpected stanza {other}"),
        }
    }

    fn route_message(&mut self, from: usize, node: Node) {
        let id = node.attr_str("id").unwrap().to_owned();
        let to = node.attr_jid("to").unwrap();
        assert!(matches!(node.get_attr("to"), Some(AttrValue::Jid(_))));
        self.log.insert(id.clone(), from);
        let t = self.next_t();
        self.inboxes[from].push_back(
            Node::new("ack")
                .attr("class", "message")
                .attr("id", id.clone())
                .attr("from", to.clone())
                .attr("t", t.clone()),
        );
        let sender = &self.devices[from];
        let (sender_pn, sender_lid, push) = (
            sender.pn.clone(),
            sender.lid.clone(),
            sender.push_name.clone(),
        );
        let ty = node.attr_str("type").unwrap().to_owned();
        let device_identity = node.child("device-identity").cloned();

        if to.is_group() {
            let group = &self.groups[&to.user];
            let mode = group.mode;
            let members = group.members.clone();
            let (participant, alt_key, alt) = match mode {
                AddressingMode::Lid => {
                    (sender_lid.clone(), "participant_pn", sender_pn.to_non_ad())
                }
                AddressingMode::Pn => {
                    (sender_pn.clone(), "participant_lid", sender_lid.to_non_ad())
                }
            };
            let skmsg = node
                .children_by_tag("enc")
                .find(|e| e.attr_str("type") == Some("skmsg"))
                .cloned();
            // A retry resend goes to one device only.
            let targets: Vec<usize> = match node.attr_jid("participant") {
                Some(p) => vec![self.find(&p).unwrap()],
                None => members
                    .iter()
                    .flat_map(|&m| self.account_devices(&self.devices[m].pn.to_non_ad()))
                    .filter(|&i| i != from)
                    .collect(),
            };
            for dev in targets {
                let mut encs = Vec::new();
                if let Some(parts) = node.child("participants") {
                    for p in parts.children_by_tag("to") {
                        if self.find(&p.attr_jid("jid").unwrap()) == Some(dev) {
                            encs.extend(p.children_by_tag("enc").cloned());
                        }
                    }
                }
                if node.child("participants").is_none() && skmsg.is_none() {
                    encs.extend(node.children_by_tag("enc").cloned());
                }
                encs.extend(skmsg.clone());
                let pk = encs.iter().any(|e| e.attr_str("type") == Some("pkmsg"));
                let mut children = encs;
                if pk && let Some(di) = &device_identity {
                    children.push(di.clone());
                }
                let out = Node::new("message")
                    .attr("from", to.clone())
                    .attr("participant", participant.clone())
                    .attr(alt_key, alt.clone())
                    .attr("addressing_mode", mode.as_str())
                    .attr("id", id.clone())
                    .attr("t", t.clone())
                    .attr("type", ty.clone())
                    .attr("notify", push.clone())
                    .children(children);
                self.deliver(dev, out);
            }
            return;
        }

        let chat = to.to_non_ad();
        let mut per_device: Vec<(usize, Node)> = Vec::new();
        if let Some(parts) = node.child("participants") {
            for p in parts.children_by_tag("to") {
                let dev = self.find(&p.attr_jid("jid").unwrap()).unwrap();
                assert_ne!(dev, from, "never encrypt to the sending device");
                per_device.push((dev, p.child("enc").unwrap().clone()));
            }
        } else {
            // Retry resend: `to` is the device.
            assert_eq!(node.attr_str("device_fanout"), Some("false"));
            let dev = self.find(&to).unwrap();
            per_device.push((dev, node.child("enc").unwrap().clone()));
        }
        for (dev, enc) in per_device {
            let own = jid_eq_user(&self.devices[dev].pn, &sender_pn);
            let mut out = Node::new("message")
                .attr("from", sender_pn.clone())
                .attr("id", id.clone())
                .attr("t", t.clone())
                .attr("type", ty.clone())
                .attr("notify", push.clone())
                .attr("sender_lid", sender_lid.to_non_ad());
            if own {
                let recipient = node.attr_jid("recipient").unwrap_or(chat.clone());
                out = out.attr("recipient", recipient);
            }
            let pk = enc.attr_str("type") == Some("pkmsg");
            let mut children = vec![enc];
            if pk {
                children.push(
                    device_identity
                        .clone()
                        .expect("pkmsg without device-identity"),
                );
            }
            self.deliver(dev, out.children(children));
        }
    }

    fn route_receipt(&mut self, from: usize, node: Node) {
        let id = node.attr_str("id").unwrap().to_owned();
        let to = node.attr_jid("to").unwrap();
        let mut ack = Node::new("ack")
            .attr("class", "receipt")
            .attr("id", id.clone())
            .attr("from", to.clone());
        if let Some(t) = node.attr_str("type") {
            ack = ack.attr("type", t.to_owned());
        }
        self.inboxes[from].push_back(ack);
        let Some(&sender) = self.log.get(&id) else {
            return;
        };
        let t = self.next_t();
        let reader = self.devices[from].pn.clone();
        let mut out = Node::new("receipt");
        if to.is_group() {
            out = out.attr("from", to.clone()).attr("participant", reader);
        } else {
            out = out.attr("from", reader);
        }
        out = out.attr("id", id).attr("t", t);
        if let Some(r) = node.attr_jid("recipient") {
            out = out.attr("recipient", r);
        }
        if let Some(ty) = node.attr_str("type") {
            out = out.attr("type", ty.to_owned());
        }
        out.content = node.content.clone();
        self.inboxes[sender].push_back(out);
    }
}

fn wire(node: &Node) -> Node {
    zapin_protocol::binary::unpack(&zapin_protocol::binary::pack(node).unwrap()).unwrap()
}

/// The actor spawns these futures on a multi-threaded runtime.
fn require_send<F: std::future::Future + Send>(f: F) -> F {
    f
}

struct Ex<'a>(&'a mut FakeServer);

impl Exchange for Ex<'_> {
    fn query(
        &mut self,
        iq: Node,
    ) -> impl std::future::Future<Output = Result<Node, ExchangeError>> + Send {
        let answer = self.0.answer_iq(iq);
        async move { Ok(answer) }
    }
}

struct Client {
    m: Messenger,
    /// The messenger's store, to count its write transactions.
    store: Store,
    rng: ChaCha20Rng,
    events: Vec<ReceivedMessage>,
    statuses: Vec<StatusUpdate>,
    /// Every reply the client sent, for shape checks.
    sent_replies: Vec<Node>,
}

struct Net {
    server: FakeServer,
    clients: Vec<Client>,
}

impl Net {
    fn new() -> Net {
        Net {
            server: FakeServer::default(),
            clients: Vec::new(),
        }
    }

    /// Adds device `device` of account (`pn`, `lid`), returning its index.
    async fn add(&mut self, pn: &str, lid: &str, device: u16, name: &str) -> usize {
        let idx = self.clients.len();
        let (srv, client) = Self::make(pn, lid, device, name, 100 + idx as u64).await;
        self.server.devices.push(srv);
        self.server.inboxes.push(VecDeque::new());
        self.clients.push(client);
        idx
    }

    /// Replaces device `idx` by a fresh install (new identity, empty store), as after a
    /// reinstall.
    async fn reinstall(&mut self, idx: usize) {
        let d = &self.server.devices[idx];
        let (pn, lid, device, name) = (
            d.pn.user.clone(),
            d.lid.user.clone(),
            d.pn.device,
            d.push_name.clone(),
        );
        let (srv, client) = Self::make(&pn, &lid, device, &name, 900 + idx as u64).await;
        self.server.devices[idx] = srv;
        self.clients[idx] = client;
    }

    async fn make(pn: &str, lid: &str, device: u16, name: &str, seed: u64) -> (SrvDevice, Client) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let identity = LocalIdentity::generate(&mut rng);
        let signed = SignedPreKey::generate(&identity, 1, &mut rng);
        let prekeys = signal::PreKey::generate_batch(1, 5, &mut rng);
        let store = Store::memory(&MasterKey::from_bytes([seed as u8; 32]));
        let id = DeviceId::new(format!("{pn}-{device}")).unwrap();
        let creds = DeviceCredentials {
            registration_id: identity.registration_id,
            noise_key: kp(&KeyPair::generate(&mut rng)),
            identity_key: kp(&identity.key_pair),
            signed_prekey: zapin_signal_store::SignedPreKey {
                id: signed.id,
                key_pair: kp(&signed.key_pair),
                signature: signed.signature,
                created_at: 0,
            },
            adv_secret_key: Secret32::new([2; 32]),
            account: None,
            push_name: Some(name.to_owned()),
            platform: None,
            routing_info: None,
        };
        store.create_device(&id, &creds).await.unwrap();
        let rows: Vec<_> = prekeys
            .iter()
            .map(|p| zapin_signal_store::PreKey {
                id: p.id,
                key_pair: kp(&p.key_pair),
            })
            .collect();
        store.insert_prekeys(&id, &rows).await.unwrap();
        let pn_jid = Jid::with_device(pn, device, Server::Pn);
        let lid_jid = Jid::with_device(lid, device, Server::Lid);
        let device_identity = format!("adv-{pn}-{device}").into_bytes();
        let me = Me {
            store_id: id,
            pn: pn_jid.clone(),
            lid: Some(lid_jid.clone()),
            identity: identity.clone(),
            device_identity: device_identity.clone(),
        };
        let srv = SrvDevice {
            pn: pn_jid,
            lid: lid_jid,
            identity,
            signed,
            prekeys: prekeys.into(),
            device_identity,
            push_name: name.to_owned(),
        };
        let client = Client {
            m: Messenger::new(store.clone(), me, Limits::default()),
            store,
            rng,
            events: Vec::new(),
            statuses: Vec::new(),
            sent_replies: Vec::new(),
        };
        (srv, client)
    }

    async fn send(
        &mut self,
        from: usize,
        to: &Jid,
        message: &zapin_protocol::proto::wa::Message,
        id: &str,
    ) -> Sent {
        let c = &mut self.clients[from];
        let sent =
            c.m.send_direct(&mut Ex(&mut self.server), to, message, id, &mut c.rng)
                .await
                .unwrap();
        self.server.route(from, sent.stanza.clone());
        sent
    }

    async fn send_group(&mut self, from: usize, group: &str, text: &str, id: &str) -> Sent {
        let g = &self.server.groups[group];
        let mode = g.mode;
        let members: Vec<Jid> = g
            .members
            .iter()
            .map(|&i| self.server.devices[i].pn.to_non_ad())
            .collect();
        let c = &mut self.clients[from];
        let msg = prepare_text(&Jid::group(group), text, None, &[]);
        let sent = require_send(c.m.send_group(
            &mut Ex(&mut self.server),
            &Jid::group(group),
            &members,
            mode,
            &msg,
            id,
            &mut c.rng,
        ))
        .await
        .unwrap();
        self.server.route(from, sent.stanza.clone());
        sent
    }

    /// Runs every client on its inbox until no stanza is left anywhere.
    async fn pump(&mut self) {
        loop {
            let mut progressed = false;
            for i in 0..self.clients.len() {
                while let Some(node) = self.server.inboxes[i].pop_front() {
                    progressed = true;
                    self.handle(i, node).await;
                }
            }
            if !progressed {
                break;
            }
        }
    }

    async fn handle(&mut self, i: usize, node: Node) {
        let c = &mut self.clients[i];
        match node.tag.as_ref() {
            "message" => {
                let r = require_send(c.m.receive(&node, &mut c.rng)).await.unwrap();
                c.events.extend(r.message);
                for reply in r.replies {
                    c.sent_replies.push(reply.clone());
                    self.server.route(i, reply);
                }
            }
            "receipt" => {
                let out =
                    require_send(c.m.handle_receipt(&mut Ex(&mut self.server), &node, &mut c.rng))
                        .await
                        .unwrap();
                assert!(out.retry_error.is_none(), "{:?}", out.retry_error);
                c.statuses.extend(out.statuses);
                // Resend first, then the ack (order within a client does not matter to the
                // fake server, but the resend must not wait behind anything).
                for reply in out.replies.into_iter().rev() {
                    c.sent_replies.push(reply.clone());
                    self.server.route(i, reply);
                }
            }
            "ack" => {
                if let Some(a) = ServerAck::parse(&node) {
                    c.statuses.push(a.status_update());
                }
            }
            other => panic!("unexpected {other}"),
        }
    }
}

fn text_of(e: &ReceivedMessage) -> String {
    e.message
        .conversation
        .clone()
        .or_else(|| {
            e.message
                .extended_text_message
                .as_ref()
                .and_then(|x| x.text.clone())
        })
        .unwrap()
}

fn enc_types(stanza: &Node) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = stanza.child("participants") {
        for to in p.children_by_tag("to") {
            for e in to.children_by_tag("enc") {
                out.push(e.attr_str("type").unwrap().to_owned());
            }
        }
    }
    for e in stanza.children_by_tag("enc") {
        out.push(e.attr_str("type").unwrap().to_owned());
    }
    out
}

const ALICE: &str = "5511000000001";
const BOB: &str = "5511000000002";
const CAROL: &str = "5511000000003";

#[tokio::test]
async fn one_to_one_both_ways_pkmsg_then_msg_with_statuses() {
    let mut net = Net::new();
    let a = net.add(ALICE, "900001", 1, "Alice").await;
    let b = net.add(BOB, "900002", 1, "Bob").await;

    let m1 = prepare_text(&Jid::pn(BOB), "hello bob", None, &[]);
    let sent = net
        .send(a, &Jid::pn(BOB), &m1, "3EB0000000000000000001")
        .await;
    // §7.2 shape: <message id to type><participants><to jid><enc v=2 type>…
    let s = &sent.stanza;
    assert_eq!(s.tag, "message");
    assert_eq!(s.attr_str("id"), Some("3EB0000000000000000001"));
    assert!(matches!(s.get_attr("to"), Some(AttrValue::Jid(j)) if *j == Jid::pn(BOB)));
    assert_eq!(s.attr_str("type"), Some("text"));
    let to = s.child("participants").unwrap().child("to").unwrap();
    assert!(
        matches!(to.get_attr("jid"), Some(AttrValue::Jid(j)) if *j == Jid::with_device("900002", 1, Server::Lid))
    );
    let enc = to.child("enc").unwrap();
    assert_eq!(enc.attr_str("v"), Some("2"));
    assert_eq!(enc.attr_str("type"), Some("pkmsg"));
    assert_eq!(
        s.child("device-identity")
            .unwrap()
            .content_bytes()
            .unwrap()
            .as_ref(),
        format!("adv-{ALICE}-1").as_bytes()
    );
    assert_eq!(enc_types(s), vec!["pkmsg"]);
    net.pump().await;

    let ev = &net.clients[b].events;
    assert_eq!(ev.len(), 1);
    assert_eq!(text_of(&ev[0]), "hello bob");
    assert_eq!(ev[0].key.remote_jid, Jid::pn(ALICE));
    assert!(!ev[0].key.from_me);
    assert_eq!(ev[0].key.id, "3EB0000000000000000001");
    assert_eq!(ev[0].key.participant, None);
    assert_eq!(ev[0].push_name.as_deref(), Some("Alice"));
    assert_eq!(ev[0].message_type, "conversation");
    assert!(ev[0].timestamp > 1_700_000_000);
    // Bob's delivery receipt: <receipt id to=J(alice device)> and no type.
    let receipt = net.clients[b]
        .sent_replies
        .iter()
        .find(|n| n.tag == "receipt")
        .unwrap();
    assert!(
        matches!(receipt.get_attr("to"), Some(AttrValue::Jid(j)) if *j == Jid::with_device(ALICE, 1, Server::Pn))
    );
    assert_eq!(receipt.attr_str("type"), None);
    // Alice saw the server ack, then the delivery.
    let st: Vec<MessageStatus> = net.clients[a].statuses.iter().map(|s| s.status).collect();
    assert_eq!(
        st,
        vec![MessageStatus::ServerAck, MessageStatus::DeliveryAck]
    );
    assert_eq!(net.clients[a].statuses[1].key.remote_jid, Jid::pn(BOB));

    // Bob answers on the session Alice's pkmsg created: a plain msg, no device-identity.
    let m2 = prepare_text(&Jid::pn(ALICE), "hi alice", None, &[]);
    let sent = net
        .send(b, &Jid::pn(ALICE), &m2, "3EB0000000000000000002")
        .await;
    assert_eq!(enc_types(&sent.stanza), vec!["msg"]);
    assert!(sent.stanza.child("device-identity").is_none());
    net.pump().await;
    assert_eq!(text_of(&net.clients[a].events[0]), "hi alice");

    // Alice's next message is a msg too; no second key fetch.
    let fetches = net.server.key_fetches;
    let usyncs = net.server.usync_queries;
    let m3 = prepare_text(&Jid::pn(BOB), "again", None, &[]);
    let sent = net
        .send(a, &Jid::pn(BOB), &m3, "3EB0000000000000000003")
        .await;
    assert_eq!(enc_types(&sent.stanza), vec!["msg"]);
    assert_eq!(net.server.key_fetches, fetches);
    assert_eq!(
        net.server.usync_queries, usyncs,
        "device list came from the cache"
    );
    net.pump().await;
    assert_eq!(text_of(&net.clients[b].events[1]), "again");

    // Read receipt from Bob → READ for Alice.
    let read = zapin_engine::messaging::receipts::read_receipt(
        &Jid::pn(ALICE),
        None,
        &[
            "3EB0000000000000000001".into(),
            "3EB0000000000000000003".into(),
        ],
        1_700_000_100,
        "read",
    )
    .unwrap();
    net.server.route(b, read);
    net.pump().await;
    let reads: Vec<&StatusUpdate> = net.clients[a]
        .statuses
        .iter()
        .filter(|s| s.status == MessageStatus::Read)
        .collect();
    assert_eq!(reads.len(), 2);
    assert_eq!(reads[1].key.id, "3EB0000000000000000003");
}

#[tokio::test]
async fn own_device_fan_out_delivers_a_device_sent_message() {
    let mut net = Net::new();
    let a1 = net.add(ALICE, "900001", 1, "Alice").await;
    let a2 = net.add(ALICE, "900001", 2, "Alice").await;
    let b = net.add(BOB, "900002", 1, "Bob").await;
    let m = prepare_text(&Jid::pn(BOB), "to bob, seen by my phone", None, &[]);
    let sent = net
        .send(a1, &Jid::pn(BOB), &m, "3EB0000000000000000010")
        .await;
    let tos: Vec<Jid> = sent
        .stanza
        .child("participants")
        .unwrap()
        .children_by_tag("to")
        .map(|t| t.attr_jid("jid").unwrap())
        .collect();
    assert_eq!(tos.len(), 2);
    assert!(tos.contains(&Jid::with_device("900001", 2, Server::Lid)));
    assert!(!tos.contains(&Jid::with_device("900001", 1, Server::Lid)));
    net.pump().await;

    assert_eq!(
        text_of(&net.clients[b].events[0]),
        "to bob, seen by my phone"
    );
    let own = &net.clients[a2].events;
    assert_eq!(own.len(), 1);
    assert!(own[0].key.from_me);
    assert_eq!(own[0].key.remote_jid, Jid::pn(BOB));
    assert_eq!(text_of(&own[0]), "to bob, seen by my phone");
    assert!(own[0].message.device_sent_message.is_none(), "unwrapped");
    // The own-device receipt is type=sender with the chat as recipient.
    let r = net.clients[a2]
        .sent_replies
        .iter()
        .find(|n| n.tag == "receipt")
        .unwrap();
    assert_eq!(r.attr_str("type"), Some("sender"));
    assert_eq!(r.attr_jid("recipient"), Some(Jid::pn(BOB)));
    assert!(net.clients[a1].events.is_empty());
}

/// One outgoing stanza is one store transaction (one fsync on SQLite), however many devices it
/// is encrypted for and whether or not their sessions had to be started from bundles first.
#[tokio::test]
async fn a_send_to_many_devices_commits_its_keys_in_one_transaction() {
    let mut net = Net::new();
    let a1 = net.add(ALICE, "900001", 1, "Alice").await;
    let _a2 = net.add(ALICE, "900001", 2, "Alice").await;
    let _a3 = net.add(ALICE, "900001", 3, "Alice").await;
    let bobs: Vec<usize> = [
        net.add(BOB, "900002", 0, "Bob").await,
        net.add(BOB, "900002", 1, "Bob").await,
        net.add(BOB, "900002", 2, "Bob").await,
    ]
    .into();
    let c = net.add(CAROL, "900003", 1, "Carol").await;
    net.server.groups.insert(
        "120363000000000009".into(),
        Group {
            members: vec![a1, bobs[0], c],
            mode: AddressingMode::Lid,
        },
    );
    let writes = |net: &Net| net.clients[a1].store.write_transactions();
    for (n, id) in ["3EB0000000000000000090", "3EB0000000000000000091"]
        .into_iter()
        .enumerate()
    {
        let before = writes(&net);
        let m = prepare_text(&Jid::pn(BOB), &format!("to every device {n}"), None, &[]);
        let sent = net.send(a1, &Jid::pn(BOB), &m, id).await;
        // Three of Bob's devices and two other devices of our own.
        assert_eq!(sent.devices.len(), 5);
        // pkmsg both times: no device has answered yet.
        assert_eq!(enc_types(&sent.stanza), ["pkmsg"; 5]);
        assert_eq!(writes(&net) - before, 1, "send {n}");
        net.pump().await;
        for &b in &bobs {
            assert_eq!(
                text_of(net.clients[b].events.last().unwrap()),
                format!("to every device {n}")
            );
        }
    }
    // A group send (sender key created and distributed to six devices, plus the skmsg): one.
    let before = writes(&net);
    let sent = net
        .send_group(a1, "120363000000000009", "group", "3EB0000000000000000092")
        .await;
    assert_eq!(enc_types(&sent.stanza).len(), 7);
    assert_eq!(writes(&net) - before, 1);
    net.pump().await;
    assert_eq!(text_of(net.clients[c].events.last().unwrap()), "group");
}

#[tokio::test]
async fn quoted_reply_with_mentions_round_trips() {
    let mut net = Net::new();
    let a = net.add(ALICE, "900001", 1, "Alice").await;
    let b = net.add(BOB, "900002", 1, "Bob").await;
    let orig = prepare_text(&Jid::pn(BOB), "original", None, &[]);
    net.send(a, &Jid::pn(BOB), &orig, "3EB0000000000000000020")
        .await;
    net.pump().await;
    let q = Quoted {
        id: "3EB0000000000000000020".into(),
        chat: Jid::pn(ALICE),
        author: Jid::pn(ALICE),
        message: net.clients[b].events[0].message.clone(),
    };
    let reply = prepare_text(&Jid::pn(ALICE), "re @carol", Some(&q), &[Jid::pn(CAROL)]);
    net.send(b, &Jid::pn(ALICE), &reply, "3EB0000000000000000021")
        .await;
    net.pump().await;
    let got = &net.clients[a].events[0];
    assert_eq!(got.message_type, "extendedTextMessage");
    let ctx = got
        .message
        .extended_text_message
        .as_ref()
        .unwrap()
        .context_info
        .as_ref()
        .unwrap();
    assert_eq!(ctx.stanza_id.as_deref(), Some("3EB0000000000000000020"));
    assert_eq!(
        ctx.participant.as_deref(),
        Some(&*format!("{ALICE}@s.whatsapp.net"))
    );
    assert_eq!(ctx.mentioned_jid, vec![format!("{CAROL}@s.whatsapp.net")]);
    assert_eq!(
        ctx.quoted_message.as_ref().unwrap().conversation.as_deref(),
        Some("original")
    );
}

#[tokio::test]
async fn group_of_three_distributes_sender_keys_then_uses_skmsg() {
    for mode in [AddressingMode::Lid, AddressingMode::Pn] {
        let mut net = Net::new();
        let a = net.add(ALICE, "900001", 1, "Alice").await;
        let b = net.add(BOB, "900002", 1, "Bob").await;
        let c = net.add(CAROL, "900003", 1, "Carol").await;
        net.server.groups.insert(
            "120363000000000001".into(),
            Group {
                members: vec![a, b, c],
                mode,
            },
        );
        let sent = net
            .send_group(
                a,
                "120363000000000001",
                "hi group",
                "3EB0000000000000000030",
            )
            .await;
        let s = &sent.stanza;
        assert!(
            matches!(s.get_attr("to"), Some(AttrValue::Jid(j)) if *j == Jid::group("120363000000000001"))
        );
        assert_eq!(s.attr_str("addressing_mode"), Some(mode.as_str()));
        assert_eq!(s.attr_str("phash"), sent.phash.as_deref());
        assert_eq!(sent.phash.as_ref().unwrap().len(), 10);
        assert_eq!(enc_types(s), vec!["pkmsg", "pkmsg", "skmsg"]);
        assert!(s.child("device-identity").is_some());
        net.pump().await;
        for r in [b, c] {
            let ev = &net.clients[r].events;
            assert_eq!(ev.len(), 1, "{mode:?}");
            assert_eq!(text_of(&ev[0]), "hi group");
            assert_eq!(ev[0].key.remote_jid, Jid::group("120363000000000001"));
            assert!(ev[0].key.participant.is_some());
            let receipt = net.clients[r]
                .sent_replies
                .iter()
                .find(|n| n.tag == "receipt")
                .unwrap();
            assert_eq!(
                receipt.attr_jid("to"),
                Some(Jid::group("120363000000000001"))
            );
            assert!(receipt.attr_jid("participant").is_some());
        }

        // Everyone holds the key now: only the skmsg.
        let sent = net
            .send_group(a, "120363000000000001", "second", "3EB0000000000000000031")
            .await;
        assert_eq!(enc_types(&sent.stanza), vec!["skmsg"]);
        assert!(sent.stanza.child("participants").is_none());
        net.pump().await;
        assert_eq!(text_of(&net.clients[c].events[1]), "second");

        // Bob sends too: his own key goes out pairwise (msg to alice who talked to him, pkmsg
        // to carol).
        net.send_group(
            b,
            "120363000000000001",
            "bob here",
            "3EB0000000000000000032",
        )
        .await;
        net.pump().await;
        assert_eq!(text_of(&net.clients[a].events[0]), "bob here");
        assert_eq!(text_of(&net.clients[c].events[2]), "bob here");
        let delivered: Vec<MessageStatus> = net.clients[a]
            .statuses
            .iter()
            .filter(|s| s.key.id == "3EB0000000000000000030")
            .map(|s| s.status)
            .collect();
        assert_eq!(
            delivered,
            vec![
                MessageStatus::ServerAck,
                MessageStatus::DeliveryAck,
                MessageStatus::DeliveryAck
            ]
        );
    }
}

#[tokio::test]
async fn a_redelivered_message_is_acked_without_a_second_event() {
    let mut net = Net::new();
    let a = net.add(ALICE, "900001", 1, "Alice").await;
    let b = net.add(BOB, "900002", 1, "Bob").await;
    for (i, text) in ["one", "two"].iter().enumerate() {
        let m = prepare_text(&Jid::pn(BOB), text, None, &[]);
        net.send(a, &Jid::pn(BOB), &m, &format!("3EB000000000000000004{i}"))
            .await;
        net.pump().await;
    }
    assert_eq!(net.clients[b].events.len(), 2);
    // The server redelivers both (crash between commit and ack).
    let again: Vec<Node> = net
        .server
        .delivered
        .iter()
        .filter(|(to, n)| *to == b && n.tag == "message")
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(again.len(), 2);
    for n in again {
        let before = net.clients[b].sent_replies.len();
        net.server.inboxes[b].push_back(n);
        net.pump().await;
        let replies = &net.clients[b].sent_replies[before..];
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].tag, "receipt");
        assert_eq!(replies[0].attr_str("type"), None);
    }
    assert_eq!(net.clients[b].events.len(), 2);
}

#[tokio::test]
async fn retry_receipts_recover_undecryptable_messages() {
    let mut net = Net::new();
    let a = net.add(ALICE, "900001", 1, "Alice").await;
    let b = net.add(BOB, "900002", 1, "Bob").await;

    // First delivery garbled: Bob asks for a retry (count 1, no keys), Alice re-encrypts.
    net.server.corrupt.insert(b, 1);
    let m = prepare_text(&Jid::pn(BOB), "lost then found", None, &[]);
    net.send(a, &Jid::pn(BOB), &m, "3EB0000000000000000050")
        .await;
    net.pump().await;
    let retry = net.clients[b]
        .sent_replies
        .iter()
        .find(|n| n.attr_str("type") == Some("retry"))
        .unwrap()
        .clone();
    assert!(
        matches!(retry.get_attr("to"), Some(AttrValue::Jid(j)) if *j == Jid::with_device(ALICE, 1, Server::Pn))
    );
    let r = retry.child("retry").unwrap();
    assert_eq!(r.attr_str("count"), Some("1"));
    assert_eq!(r.attr_str("id"), Some("3EB0000000000000000050"));
    assert_eq!(r.attr_str("v"), Some("1"));
    assert!(r.attr_str("t").is_some());
    assert_eq!(
        retry
            .child("registration")
            .unwrap()
            .content_bytes()
            .unwrap()
            .len(),
        4
    );
    assert!(retry.child("keys").is_none());
    let resend = net.clients[a]
        .sent_replies
        .iter()
        .find(|n| n.tag == "message")
        .unwrap();
    assert_eq!(resend.attr_str("device_fanout"), Some("false"));
    assert_eq!(resend.child("enc").unwrap().attr_str("count"), Some("1"));
    assert!(resend.attr_jid("to").unwrap().device == 1);
    assert_eq!(net.clients[b].events.len(), 1);
    assert_eq!(text_of(&net.clients[b].events[0]), "lost then found");

    // Twice garbled: the second retry carries <keys>; Alice builds a new session from them.
    net.server.corrupt.insert(b, 2);
    let m = prepare_text(&Jid::pn(BOB), "needs keys", None, &[]);
    net.send(a, &Jid::pn(BOB), &m, "3EB0000000000000000051")
        .await;
    net.pump().await;
    let retries: Vec<&Node> = net.clients[b]
        .sent_replies
        .iter()
        .filter(|n| {
            n.attr_str("type") == Some("retry")
                && n.attr_str("id") == Some("3EB0000000000000000051")
        })
        .collect();
    assert_eq!(retries.len(), 2);
    let keys = retries[1].child("keys").unwrap();
    for tag in ["type", "identity", "key", "skey", "device-identity"] {
        assert!(keys.child(tag).is_some(), "missing {tag}");
    }
    assert_eq!(
        retries[1].child("retry").unwrap().attr_str("count"),
        Some("2")
    );
    let last = net.clients[b].events.last().unwrap();
    assert_eq!(text_of(last), "needs keys");
    assert_eq!(net.clients[b].events.len(), 2);

    // And the conversation keeps working both ways afterwards.
    let m = prepare_text(&Jid::pn(ALICE), "still here", None, &[]);
    net.send(b, &Jid::pn(ALICE), &m, "3EB0000000000000000052")
        .await;
    net.pump().await;
    assert_eq!(text_of(net.clients[a].events.last().unwrap()), "still here");
}

#[tokio::test]
async fn garbage_enc_gets_a_retry_receipt_and_no_event() {
    let mut net = Net::new();
    let _a = net.add(ALICE, "900001", 1, "Alice").await;
    let b = net.add(BOB, "900002", 1, "Bob").await;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("msg", vec![]),
        ("msg", vec![0x33; 40]),
        ("pkmsg", vec![0x33, 0xff, 0xff]),
        ("pkmsg", vec![0x22, 1]),
        ("skmsg", vec![0x33, 1, 2]),
        ("frob", vec![1]),
    ];
    for (i, (ty, body)) in bodies.into_iter().enumerate() {
        let node = Node::new("message")
            .attr("from", Jid::with_device(ALICE, 1, Server::Pn))
            .attr("id", format!("BAD{i}"))
            .attr("t", "1700000000")
            .attr("type", "text")
            .children(vec![
                Node::new("enc").attr("v", "2").attr("type", ty).bytes(body),
            ]);
        let c = &mut net.clients[b];
        let r = c.m.receive(&node, &mut c.rng).await.unwrap();
        assert!(r.message.is_none());
        assert_eq!(r.replies[0].attr_str("type"), Some("retry"), "{ty}");
        assert_eq!(r.replies[0].attr_str("id"), Some(&*format!("BAD{i}")));
        assert_eq!(r.replies[1].tag, "ack");
        assert_eq!(r.replies[1].attr_str("class"), Some("message"));
    }
    // A group skmsg from an unknown sender key as well.
    let node = Node::new("message")
        .attr("from", Jid::group("1203"))
        .attr("participant", Jid::with_device(ALICE, 1, Server::Pn))
        .attr("id", "BADG")
        .attr("t", "1700000000")
        .attr("type", "text")
        .children(vec![
            Node::new("enc")
                .attr("v", "2")
                .attr("type", "skmsg")
                .bytes(vec![0x33; 90]),
        ]);
    let c = &mut net.clients[b];
    let r = c.m.receive(&node, &mut c.rng).await.unwrap();
    assert!(r.message.is_none());
    assert_eq!(r.replies[0].attr_str("type"), Some("retry"));
    assert_eq!(
        r.replies[0].attr_jid("participant"),
        Some(Jid::with_device(ALICE, 1, Server::Pn))
    );
    // Missing attributes get a NACK, not a panic.
    let r =
        c.m.receive(&Node::new("message"), &mut c.rng)
            .await
            .unwrap();
    assert_eq!(r.replies[0].attr_str("error"), Some("487"));
    let no_participant = Node::new("message")
        .attr("from", Jid::group("1203"))
        .attr("id", "X");
    let r = c.m.receive(&no_participant, &mut c.rng).await.unwrap();
    assert_eq!(r.replies.len(), 1);
    assert_eq!(r.replies[0].tag, "ack");
    assert_eq!(r.replies[0].attr_str("error"), Some("487"));
    // After MAX_RETRY_COUNT attempts for one id only an ack is sent.
    let node = Node::new("message")
        .attr("from", Jid::with_device(ALICE, 1, Server::Pn))
        .attr("id", "BADX")
        .attr("t", "1700000000")
        .attr("type", "text")
        .children(vec![
            Node::new("enc")
                .attr("v", "2")
                .attr("type", "msg")
                .bytes(vec![1, 2]),
        ]);
    let mut kinds = Vec::new();
    for _ in 0..7 {
        let r = c.m.receive(&node, &mut c.rng).await.unwrap();
        kinds.push(r.replies.len());
    }
    assert_eq!(kinds, vec![2, 2, 2, 2, 2, 1, 1]);
}

#[tokio::test]
async fn group_retry_resends_pairwise_with_the_sender_key() {
    let mut net = Net::new();
    let a = net.add(ALICE, "900001", 1, "Alice").await;
    let b = net.add(BOB, "900002", 1, "Bob").await;
    let c = net.add(CAROL, "900003", 1, "Carol").await;
    net.server.groups.insert(
        "120363000000000002".into(),
        Group {
            members: vec![a, b, c],
            mode: AddressingMode::Lid,
        },
    );
    net.server.corrupt.insert(c, 1);
    net.send_group(a, "120363000000000002", "for all", "3EB0000000000000000060")
        .await;
    net.pump().await;
    assert_eq!(text_of(&net.clients[b].events[0]), "for all");
    let retry = net.clients[c]
        .sent_replies
        .iter()
        .find(|n| n.attr_str("type") == Some("retry"))
        .unwrap();
    assert_eq!(retry.attr_jid("to"), Some(Jid::group("120363000000000002")));
    assert!(retry.attr_jid("participant").is_some());
    let resend = net.clients[a]
        .sent_replies
        .iter()
        .find(|n| n.tag == "message")
        .unwrap();
    assert_eq!(
        resend.attr_jid("to"),
        Some(Jid::group("120363000000000002"))
    );
    assert_eq!(
        resend.attr_jid("participant").map(|p| p.to_non_ad()),
        Some(Jid::pn(CAROL))
    );
    assert_eq!(net.clients[c].events.len(), 1);
    assert_eq!(text_of(&net.clients[c].events[0]), "for all");
    // Carol got the sender key from the resend: the next skmsg decrypts.
    net.send_group(a, "120363000000000002", "next", "3EB0000000000000000061")
        .await;
    net.pump().await;
    assert_eq!(text_of(&net.clients[c].events[1]), "next");
}

#[tokio::test]
async fn sending_to_a_lid_chat_works() {
    let mut net = Net::new();
    let a = net.add(ALICE, "900001", 1, "Alice").await;
    let b = net.add(BOB, "900002", 1, "Bob").await;
    let m = prepare_text(&Jid::lid("900002"), "via lid", None, &[]);
    let sent = net
        .send(a, &Jid::lid("900002"), &m, "3EB0000000000000000070")
        .await;
    assert_eq!(sent.stanza.attr_jid("to"), Some(Jid::lid("900002")));
    net.pump().await;
    assert_eq!(text_of(&net.clients[b].events[0]), "via lid");
    assert_eq!(
        net.clients[a].statuses.last().unwrap().status,
        MessageStatus::DeliveryAck
    );
}

#[tokio::test]
async fn a_decryptable_but_invalid_plaintext_is_nacked_not_retried() {
    use zapin_engine::messaging::signal_address;
    use zapin_engine::signal_session::encrypt_for;
    let mut net = Net::new();
    let a = net.add(ALICE, "900001", 1, "Alice").await;
    let b = net.add(BOB, "900002", 1, "Bob").await;
    let m = prepare_text(&Jid::pn(BOB), "first", None, &[]);
    net.send(a, &Jid::pn(BOB), &m, "3EB0000000000000000080")
        .await;
    net.pump().await;
    let bob_dev = Jid::with_device("900002", 1, Server::Lid);
    for (i, (plain, code)) in [
        (vec![0xff, 0xff, 0x02, 0x02], "491"),
        (vec![0x0a, 0x01, 0x41, 0x00], "487"),
    ]
    .into_iter()
    .enumerate()
    {
        let ct = {
            let m = &net.clients[a].m;
            encrypt_for(
                m.store(),
                &m.me().store_id,
                &signal_address(&bob_dev),
                &plain,
            )
            .await
            .unwrap()
        };
        let node = Node::new("message")
            .attr("from", Jid::with_device(ALICE, 1, Server::Pn))
            .attr("sender_lid", Jid::lid("900001"))
            .attr("id", format!("3EB00000000000000000F{i}"))
            .attr("t", "1700000000")
            .attr("type", "text")
            .children(vec![
                Node::new("enc")
                    .attr("v", "2")
                    .attr("type", ct.enc_type())
                    .bytes(ct.serialized().to_vec()),
            ]);
        let c = &mut net.clients[b];
        let r = c.m.receive(&node, &mut c.rng).await.unwrap();
        assert!(r.message.is_none());
        assert_eq!(r.replies.len(), 1);
        assert_eq!(r.replies[0].tag, "ack");
        assert_eq!(r.replies[0].attr_str("error"), Some(code));
    }
    let m = prepare_text(&Jid::pn(BOB), "after", None, &[]);
    net.send(a, &Jid::pn(BOB), &m, "3EB0000000000000000081")
        .await;
    net.pump().await;
    assert_eq!(text_of(net.clients[b].events.last().unwrap()), "after");
}

#[tokio::test]
async fn a_reinstalled_peer_is_reported_as_an_identity_change() {
    let mut net = Net::new();
    let a = net.add(ALICE, "900001", 1, "Alice").await;
    let b = net.add(BOB, "900002", 1, "Bob").await;
    let m = prepare_text(&Jid::pn(BOB), "before", None, &[]);
    net.send(a, &Jid::pn(BOB), &m, "3EB0000000000000000090")
        .await;
    net.pump().await;
    assert!(!net.clients[b].events[0].identity_changed);

    net.reinstall(b).await;
    let m = prepare_text(&Jid::pn(ALICE), "new phone who dis", None, &[]);
    let sent = net
        .send(b, &Jid::pn(ALICE), &m, "3EB0000000000000000091")
        .await;
    assert_eq!(enc_types(&sent.stanza), vec!["pkmsg"]);
    net.pump().await;
    let got = net.clients[a].events.last().unwrap();
    assert_eq!(text_of(got), "new phone who dis");
    assert!(got.identity_changed);

    // Alice answers on the new session.
    let m = prepare_text(&Jid::pn(BOB), "welcome back", None, &[]);
    let sent = net
        .send(a, &Jid::pn(BOB), &m, "3EB0000000000000000092")
        .await;
    assert_eq!(enc_types(&sent.stanza), vec!["msg"]);
    net.pump().await;
    assert_eq!(
        text_of(net.clients[b].events.last().unwrap()),
        "welcome back"
    );
}

#[tokio::test]
async fn a_message_on_a_session_the_peer_lost_is_recovered_with_keys_at_once() {
    let mut net = Net::new();
    let a = net.add(ALICE, "900001", 1, "Alice").await;
    let b = net.add(BOB, "900002", 1, "Bob").await;
    let m = prepare_text(&Jid::pn(BOB), "one", None, &[]);
    net.send(a, &Jid::pn(BOB), &m, "3EB00000000000000000A0")
        .await;
    net.pump().await;
    let m = prepare_text(&Jid::pn(ALICE), "two", None, &[]);
    net.send(b, &Jid::pn(ALICE), &m, "3EB00000000000000000A1")
        .await;
    net.pump().await;

    // Bob reinstalls; Alice still has the old session and sends a `msg` Bob cannot open.
    net.reinstall(b).await;
    let m = prepare_text(&Jid::pn(BOB), "are you there", None, &[]);
    let sent = net
        .send(a, &Jid::pn(BOB), &m, "3EB00000000000000000A2")
        .await;
    assert_eq!(enc_types(&sent.stanza), vec!["msg"]);
    net.pump().await;
    let retry = net.clients[b]
        .sent_replies
        .iter()
        .find(|n| n.attr_str("type") == Some("retry"))
        .unwrap();
    assert_eq!(retry.child("retry").unwrap().attr_str("count"), Some("1"));
    assert!(
        retry.child("keys").is_some(),
        "no session: keys on the first retry"
    );
    let got = net.clients[b].events.last().unwrap();
    assert_eq!(text_of(got), "are you there");
    assert_eq!(net.clients[b].events.len(), 1);
}
